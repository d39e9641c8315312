"""A kazoo contender for zkrecipes' interoperability tests.

    python3 kazoo_worker.py SERVERS PATH MODE ROUNDS HOLD_MS [PATTERN...]

MODE is lock, read, write (kazoo's Lock, ReadLock, WriteLock, given the
PATTERNs as extra_lock_patterns) or election (kazoo's Election). Each round
it takes the lock (or leads), prints "ENTER <czxid> <node path>", holds it
for HOLD_MS, prints "EXIT", waits for a line on stdin (the test has noted
the exit) and gives it back. It prints
"SESSION <id> <password hex>" once connected and "DONE" at the end; the
test reads the lines as they come (stdout is line-buffered).
"""
import sys
import threading
import time

from kazoo.client import KazooClient


def main():
    servers, path, mode, rounds, hold_ms = sys.argv[1:6]
    patterns = sys.argv[6:]
    rounds, hold = int(rounds), int(hold_ms) / 1000.0
    client = KazooClient(hosts=servers, timeout=4.0)
    client.start(timeout=30)
    sid, password = client.client_id
    out("SESSION %x %s" % (sid, password.hex()))

    def hold_it(node):
        stat = client.exists(path + "/" + node)
        out("ENTER %d %s/%s" % (stat.czxid, path, node))
        time.sleep(hold)
        out("EXIT")
        sys.stdin.readline()  # the test's go-ahead: it has noted our exit

    for _ in range(rounds):
        if mode == "election":
            election = client.Election(path, "kazoo")
            done = threading.Event()

            def lead():
                hold_it(election.lock.node)
                done.set()

            election.run(lead)
            continue
        if mode == "lock":
            lock = client.Lock(path, "kazoo", extra_lock_patterns=patterns)
        elif mode == "read":
            lock = client.ReadLock(path, "kazoo", extra_lock_patterns=patterns)
        else:
            lock = client.WriteLock(path, "kazoo", extra_lock_patterns=patterns)
        lock.acquire()
        try:
            hold_it(lock.node)
        finally:
            lock.release()
    out("DONE")
    client.stop()
    client.close()


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
