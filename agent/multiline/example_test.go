package multiline_test

import (
	"fmt"
	"strings"

	"github.com/sluicelog/sluice/agent/multiline"
)

// An input feeds the lines of one file and forwards complete events with
// the offset to checkpoint once they are delivered.
func ExampleSplitter() {
	s, err := multiline.New(multiline.Config{BeginRegex: `\d{4}-\d{2}-\d{2} .*`})
	if err != nil {
		panic(err)
	}
	emit := func(event []byte, end int64) { fmt.Printf("%q ends at %d\n", event, end) }
	var off int64
	for _, line := range strings.Split("2024-01-02 boom\n\tat a.B(B.java:1)\n2024-01-02 ok", "\n") {
		off += int64(len(line)) + 1
		s.Push([]byte(line), off, emit)
	}
	fmt.Println("pending:", s.Pending())
	s.Flush(emit) // idle timeout or end of a rotated file
	// Output:
	// "2024-01-02 boom\n\tat a.B(B.java:1)" ends at 34
	// pending: true
	// "2024-01-02 ok" ends at 48
}
