"""The pure core: no I/O, no clocks read inside. Time is always passed in."""
