"""``python -m medcam`` runs the command-line interface."""
from medcam.cli import main

if __name__ == "__main__":
    main()
