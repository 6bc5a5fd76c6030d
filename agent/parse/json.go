package parse

import (
	"strings"
	"unsafe"

	"github.com/valyala/fastjson"

	"github.com/sluicelog/sluice/agent/pipeline"
)

// jsonParser is json_log: the event must be one JSON object; each top-level
// member becomes a field. Like Logtail (rapidjson), nested objects and
// arrays are not flattened: their value is their compact JSON text; strings
// are unescaped; numbers keep their text; true and false become those words
// and null an empty value (as RapidjsonValueToString). fastjson is used
// because it parses into a reused arena without allocating.
//
// fastjson's parser is lenient: it takes NaN, 01, \x41, raw control
// characters in strings and lone surrogates. An event must be valid as
// validJSON defines it (as strict as rapidjson's default); one that is not
// is counted as json_invalid and kept whole. fastjson already checks the
// structure, and what it lets through is in escapes, control characters
// and numbers; so the whole event is checked only when it holds a backslash
// or a byte below 0x20 (whitespace between tokens included), and otherwise
// only the numbers are, in the text written for each non-string member.
// This keeps the check to a few percent of the parse on typical lines.
type jsonParser struct{}

func (jsonParser) parse(w *worker, out *pipeline.Batch, raw string) reason {
	checked := strings.IndexByte(raw, '\\') >= 0 || hasControl(raw)
	if checked && !validJSON(raw) {
		return reasonJSON
	}
	v, err := w.json.Parse(raw)
	if err != nil {
		return reasonJSON
	}
	o, err := v.Object()
	if err != nil {
		return reasonJSON
	}
	valid := true
	o.Visit(func(k []byte, v *fastjson.Value) {
		switch v.Type() {
		case fastjson.TypeString:
			out.AddFieldCopy(k, v.GetStringBytes())
			return
		case fastjson.TypeNull:
			out.AddFieldCopy(k, nil)
			return
		}
		w.buf = v.MarshalTo(w.buf[:0])
		if !checked && valid {
			// Numbers, true, false, or containers fastjson wrote
			// compactly with their numbers' text as it came.
			valid = validNumbersIn(unsafe.String(unsafe.SliceData(w.buf), len(w.buf)))
		}
		out.AddFieldCopy(k, w.buf)
	})
	if !valid {
		return reasonJSON // the stage drops the fields added
	}
	return ok
}
