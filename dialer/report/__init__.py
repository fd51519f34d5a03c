"""``dialer report``: a campaign's recorded attempts as one self-contained HTML file with plots
(analysis.py computes, render.py draws with matplotlib)."""
