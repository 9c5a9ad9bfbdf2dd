#!/usr/bin/env python3
"""Runs a command in a pseudo-terminal, for tests of interactive programs.

    python3 run_in_pty.py COMMAND [ARGS...]

Bytes on this process's stdin are typed into the terminal; what the program
writes to the terminal comes out on stdout, unchanged (escape sequences
included). The terminal is 200 columns wide so lines do not wrap (RUN_IN_PTY_COLS
sets another width, for tests of wrapping). When the
program exits, so does this, with its exit status (128+N for signal N).
Closing stdin does not end the program: type Ctrl-D (\\x04) for that.
With RUN_IN_PTY_PID_FILE set, the program's process id is written there
(for tests that signal the program itself, not this process). With
RUN_IN_PTY_PLAIN_NODE=1, NODE_OPTIONS is removed from the program's
environment (the test runner's hooks there catch signals such as SIGHUP).
"""
import fcntl
import os
import pty
import select
import struct
import sys
import termios

pid, fd = pty.fork()
if pid == 0:
    cols = int(os.environ.get("RUN_IN_PTY_COLS", "200"))
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 50, cols, 0, 0))
    if os.environ.get("RUN_IN_PTY_PLAIN_NODE") == "1":
        os.environ.pop("NODE_OPTIONS", None)
    os.execvp(sys.argv[1], sys.argv[1:])

pid_file = os.environ.get("RUN_IN_PTY_PID_FILE")
if pid_file:
    with open(pid_file + ".tmp", "w") as f:
        f.write(str(pid))
    os.rename(pid_file + ".tmp", pid_file)

inputs = [fd, 0]
while True:
    try:
        ready, _, _ = select.select(inputs, [], [])
    except InterruptedError:
        continue
    if fd in ready:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        os.write(1, data)
    if 0 in ready:
        data = os.read(0, 65536)
        if data:
            os.write(fd, data)
        else:
            inputs = [fd]

_, status = os.waitpid(pid, 0)
if os.WIFSIGNALED(status):
    sys.exit(128 + os.WTERMSIG(status))
sys.exit(os.WEXITSTATUS(status))
