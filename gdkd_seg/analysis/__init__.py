"""Looking at a teacher and a distilled student: the teacher's predictive distribution per class
(:mod:`.teacher_statistics`, :mod:`.teacher_report`), maps of the GDKD terms (:mod:`.term_maps`), and what they are
built from (:mod:`.builders`); their pictures and charts are drawn by :mod:`gdkd_seg.utils.pictures` and
:mod:`gdkd_seg.utils.plots`."""
from .teacher_statistics import TOP_PS, TeacherStatistics, entropy, pixel_maps, sorted_probabilities, top_p_set_sizes

__all__ = ['TOP_PS', 'TeacherStatistics', 'entropy', 'pixel_maps', 'sorted_probabilities', 'top_p_set_sizes']
