"""``python -m training``: train a recommender with a negative sampler (see training.trainer)."""
import sys

from training.trainer import main

sys.exit(main())
