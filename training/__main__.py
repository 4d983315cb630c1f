"""``python -m training``: train a recommender with a negative sampler (see training.cli)."""
import sys

from training.cli import main

sys.exit(main())
