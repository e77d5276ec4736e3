package pods

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzParseLogRecord: a CRI log line is refused with a "log line ..." error
// that says what is missing, or parsed into a record whose timestamp is the
// line's first field and whose stream has no space; written again with an
// explicit tag, the record parses to itself.
func FuzzParseLogRecord(f *testing.F) {
	for _, s := range []string{
		"2024-05-01T10:00:00.123456789Z stdout F hello",
		"2024-05-01T10:00:00Z stderr P part",
		"2024-05-01T10:00:00+02:00 stdout untagged line",
		"2024-05-01T10:00:00Z stdout F",
		"2024-05-01T10:00:00Z stdout ",
		"not-a-time stdout F x",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := parseLogRecord(line)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "log line ") {
				t.Fatalf("parseLogRecord(%q): error %q does not say what is wrong", line, err)
			}
			return
		}
		ts, _, _ := bytes.Cut(line, []byte(" "))
		if r.TimeRaw != string(ts) || strings.Contains(r.Stream, " ") {
			t.Fatalf("parseLogRecord(%q) = %+v", line, r)
		}
		if pt, err := time.Parse(time.RFC3339Nano, r.TimeRaw); err != nil || !pt.Equal(r.Time) {
			t.Fatalf("parseLogRecord(%q): time %v from %q (%v)", line, r.Time, r.TimeRaw, err)
		}
		tag := "F"
		if r.Partial {
			tag = "P"
		}
		again, err := parseLogRecord(fmt.Appendf(nil, "%s %s %s %s", r.TimeRaw, r.Stream, tag, r.Content))
		if err != nil || !sameRecord(again, r) {
			t.Fatalf("parseLogRecord(%q) = %+v, written again with its tag %+v (%v)", line, r, again, err)
		}
	})
}

func sameRecord(a, b logRecord) bool {
	return a.Time.Equal(b.Time) && a.TimeRaw == b.TimeRaw && a.Stream == b.Stream &&
		a.Partial == b.Partial && bytes.Equal(a.Content, b.Content)
}

// FuzzReadLogEntries: any log file content parses without panicking into
// entries with valid timestamps, consumed stops at a line boundary, and
// reading it the way a followed log is read — what is there at some moment,
// then from the returned offset once the rest has been written — yields the
// same lines as reading the whole file at once: none lost, none twice.
func FuzzReadLogEntries(f *testing.F) {
	const ts = "2024-05-01T10:00:00.000000001Z"
	for _, s := range []string{
		ts + " stdout F a\n" + ts + " stderr F b\n",
		ts + " stdout P a\n" + ts + " stdout P b\n" + ts + " stdout F c\n",
		ts + " stdout F whole\n" + ts + " stdout F half-writ",
		"garbage\n" + ts + " stdout F a\n\n",
	} {
		f.Add([]byte(s), uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		all, consumed := readLogEntries(data)
		if consumed < 0 || consumed > len(data) || (consumed > 0 && data[consumed-1] != '\n') {
			t.Fatalf("readLogEntries(%q): consumed %d is not a line boundary", data, consumed)
		}
		for _, e := range all {
			if pt, err := time.Parse(time.RFC3339Nano, e.TimeRaw); err != nil || !pt.Equal(e.Time) {
				t.Fatalf("readLogEntries(%q): entry %+v has a bad time (%v)", data, e, err)
			}
		}
		p := int(split) % (len(data) + 1)
		var lp logParser
		first, n := lp.feed(data[:p])
		if n < 0 || n > p {
			t.Fatalf("feed(%q): consumed %d of %d bytes", data[:p], n, p)
		}
		rest, _ := lp.feed(data[n:])
		if got := append(first, rest...); !sameEntries(got, all) {
			t.Fatalf("log %q read whole: %s\nread up to byte %d (consumed %d), then the rest: %s", data, showEntries(all), p, n, showEntries(got))
		}
	})
}

func sameEntries(a, b []logEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Time.Equal(b[i].Time) || a[i].TimeRaw != b[i].TimeRaw || a[i].Stream != b[i].Stream || !bytes.Equal(a[i].Content, b[i].Content) {
			return false
		}
	}
	return true
}

func showEntries(es []logEntry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "[%s %q] ", e.Stream, e.Content)
	}
	return b.String()
}

// FuzzLogRoundTrip: whatever a container writes to stdout and stderr (in
// pieces, lines longer than a record included) is read back, line by line
// and stream by stream, from the CRI log file, and the whole file is
// consumed.
func FuzzLogRoundTrip(f *testing.F) {
	f.Add([]byte("hello\nworld\n"), []byte("oops\n"), uint16(3), uint16(0))
	f.Add([]byte("no newline at the end"), []byte(""), uint16(0), uint16(0))
	f.Add([]byte("\n\nblank lines\n"), []byte("err without newline"), uint16(1), uint16(0))
	f.Add([]byte("tail of a long line\nnext\n"), []byte("e\n"), uint16(5), uint16(maxLogLine+3))
	f.Fuzz(func(t *testing.T, stdout, stderr []byte, cut, pad uint16) {
		// pad makes the first stdout line longer than one record, up to
		// three records and a bit.
		stdout = append(bytes.Repeat([]byte{'x'}, int(pad)%(3*maxLogLine+7)), stdout...)
		path := filepath.Join(t.TempDir(), "0.log")
		lf, err := createLogFile(path)
		if err != nil {
			t.Fatal(err)
		}
		c := int(cut) % (len(stdout) + 1)
		for _, w := range []struct {
			stream int
			p      []byte
		}{{0, stdout[:c]}, {1, stderr}, {0, stdout[c:]}} {
			if n, err := lf.Stream(w.stream).Write(w.p); err != nil || n != len(w.p) {
				t.Fatalf("write %q: %d, %v", w.p, n, err)
			}
		}
		if err := lf.Close(); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		entries, consumed := readLogEntries(data)
		if consumed != len(data) {
			t.Fatalf("consumed %d of %d bytes of %q", consumed, len(data), data)
		}
		got := map[string][][]byte{}
		for _, e := range entries {
			got[e.Stream] = append(got[e.Stream], e.Content)
		}
		for i, written := range [][]byte{stdout, stderr} {
			want := bytes.Split(written, []byte("\n"))
			if len(want[len(want)-1]) == 0 {
				want = want[:len(want)-1]
			}
			name := streamNames[i]
			if len(got[name]) != len(want) {
				t.Fatalf("%s: wrote %q, read back %d lines %q", name, written, len(got[name]), got[name])
			}
			for j := range want {
				if !bytes.Equal(got[name][j], want[j]) {
					t.Fatalf("%s line %d: wrote %q, read back %q", name, j, want[j], got[name][j])
				}
			}
		}
	})
}
