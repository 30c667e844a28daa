"""Timing: the losses against the naive form (:mod:`.losses`, the one naive reference in :mod:`.naive`), a
distillation step against its parts (:mod:`.distill_step`), the teacher's precision (:mod:`.teacher_precision`), the
data loader's throughput (:mod:`.data_throughput`), and the timing helpers they share (:mod:`.timing`)."""
