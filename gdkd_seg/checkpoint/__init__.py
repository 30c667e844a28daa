"""Checkpoints: safe loading (:mod:`.loading`, with the allow-list of :mod:`.allow_list`), crash-safe saving
(:mod:`.saving`), whether weights are a model's (:mod:`.matching`) and a distilled student exported for plain MMSeg
(:mod:`.export`)."""
from .loading import CheckpointLoadError, CheckpointNotFoundError, load_checkpoint_file, loading_for
from .matching import CheckpointMismatchError, check_state_dict_matches, state_dict_mismatches, student_weights

__all__ = ['CheckpointLoadError', 'CheckpointMismatchError', 'CheckpointNotFoundError', 'check_state_dict_matches',
           'load_checkpoint_file', 'loading_for', 'state_dict_mismatches', 'student_weights']
