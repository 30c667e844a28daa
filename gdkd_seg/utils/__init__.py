"""Small helpers every concern uses: the user-error types the tools report without a traceback (:mod:`.errors`),
markdown and CSV tables (:mod:`.tables`), picture panels and charts (:mod:`.pictures`, :mod:`.plots`), and edits of
nested config dicts (:mod:`.config_tree`)."""
from .config_tree import replace_types
from .errors import ConfigError, MissingExtraError, UserError, require_extra
from .tables import markdown_row, markdown_table, write_csv

__all__ = ['ConfigError', 'MissingExtraError', 'UserError', 'markdown_row', 'markdown_table', 'replace_types',
           'require_extra', 'write_csv']
