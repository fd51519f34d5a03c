"""Asterisk Manager Interface: the wire codec (``protocol``), the reference transcript loader
(``transcript``) and the client adapter used by the worker."""
