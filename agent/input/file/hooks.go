package file

// Hooks for inputs built on this one (container stdout, files inside
// containers): they know more about a file than its path — the container it
// belongs to, the runtime's line format — and steer the input through the
// optional Settings fields below. All are nil for plain file collection.

// Decoder replaces the Splitter for files whose lines are records of a
// container runtime (CRI, Docker json-file): it receives every line (without
// its newline) and the file offset just after it, and emits events with
// their own time and extra fields. It may hold lines back (partial records,
// multiline events); Pending reports that, and Flush emits what it holds
// (idle timeout, end of a rotated file).
type Decoder interface {
	Push(line []byte, end int64, emit func(Event))
	Flush(emit func(Event))
	Pending() bool
}

// Event is one decoded event. Content becomes the content field; Fields
// follow it. Bytes are valid only during the emit call; keys must be
// constants (they outlive the batch).
type Event struct {
	Content []byte
	// End is the file offset from which a restart must read again for
	// nothing to be lost: at most the offset after the event's last line,
	// less when the decoder still holds earlier lines.
	End int64
	// Sec and Nsec are the event time; zero means the time of reading.
	Sec, Nsec uint32
	Fields    []Field
}

// Field is an extra event field.
type Field struct {
	Key   string
	Value []byte
}

// hooks are Settings' optional callbacks, kept together on Input.
type hooks struct {
	newDecoder func(path string) (Decoder, error)
	dirs       func(dst []string) []string
	accept     func(path string) bool
	tags       func(path string, add func(key, value string))
	pathTag    func(path string) string
}

func (in *Input) tracking(path string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	_, ok := in.byPath[path]
	return ok
}
