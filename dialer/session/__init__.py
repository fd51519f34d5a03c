"""One call, decided: the call session (state machine + audio analysis + recognised phrases +
fusion), its vocabulary of inputs and commands, and the drivers that replay recorded or labelled
calls through it. Pure: time is passed in, nothing here does I/O except the recording reader and
writer (:mod:`dialer.session.recording`).
"""
