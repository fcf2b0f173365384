"""A run's streams (offload_worker/_streams.py, docs/protocol.md §10): the ``streams`` field
split from the other descriptors, the output's stall limit and typed errors, and the context's
streams closed when the job is answered."""

import socket
import unittest

from offload_worker import Context, StreamClosed, StreamStalled, _streams


class SplitTest(unittest.TestCase):
    def test_streams_leave_the_others_in_order(self):
        inp, out, stall, rest = _streams.split({"input": 2, "output": 0, "stall_ms": 250}, ["a", "b", "c"])
        self.assertEqual((inp, out, stall, rest), ("c", "a", 0.25, ["b"]))
        self.assertEqual(_streams.split(None, ["a"]), (None, None, 30.0, ["a"]))

    def test_bad_fields_are_refused(self):
        for spec in ({"output": 1, "stall_ms": 1}, {"input": 0, "output": 0, "stall_ms": 1},
                     {"input": 0}, {"input": True, "stall_ms": 1}, "x"):
            with self.assertRaises(ValueError, msg=repr(spec)):
                _streams.split(spec, ["a"])


class OutputTest(unittest.TestCase):
    def pair(self):
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        return a, b

    def test_a_reader_that_takes_nothing_is_stalled_naming_the_limit(self):
        reader, sock = self.pair()
        out = _streams.writer(sock, 0.1)
        with self.assertRaises(StreamStalled) as caught:
            out.write(b"x" * (64 << 20))
        self.assertIn("100 ms", str(caught.exception))
        out.close()

    def test_a_reader_gone_is_closed(self):
        reader, sock = self.pair()
        out = _streams.writer(sock, 5.0)
        reader.close()
        with self.assertRaises(StreamClosed):
            out.write(b"x" * (1 << 20))
        out.close()

    def test_the_input_reads_to_its_end(self):
        writer, sock = self.pair()
        writer.sendall(b"hello")
        writer.shutdown(socket.SHUT_WR)
        with _streams.reader(sock) as f:
            self.assertEqual(f.read(), b"hello")

    def test_the_context_closes_its_streams_taken_or_not(self):
        a, b = self.pair()
        c, d = self.pair()
        ctx = Context("j1", "x")
        ctx._streams = [b, d, 1.0]
        out = ctx.output_stream()
        with self.assertRaises(LookupError):
            ctx.output_stream()
        ctx._close_streams()
        self.assertTrue(out.closed)
        self.assertEqual(b.fileno(), -1)
        self.assertEqual(a.recv(1), b"")
        self.assertEqual(c.recv(1), b"")
        with self.assertRaises(LookupError):
            ctx.input_stream()


if __name__ == "__main__":
    unittest.main()
