"""medcam-mini-vgg: adds the ``mini_vgg`` backbone to medcam through an entry point."""
