package parse

import (
	"github.com/valyala/fastjson"

	"github.com/sluicelog/sluice/agent/pipeline"
)

// jsonParser is json_log: the event must be one JSON object; each top-level
// member becomes a field. Like Logtail (rapidjson), nested objects and
// arrays are not flattened: their value is their compact JSON text; strings
// are unescaped; numbers keep their text; true and false become those words
// and null an empty value (as RapidjsonValueToString). fastjson is used because it parses into a reused arena without
// allocating.
type jsonParser struct{}

func (jsonParser) parse(w *worker, out *pipeline.Batch, raw string) reason {
	v, err := w.json.Parse(raw)
	if err != nil {
		return reasonJSON
	}
	o, err := v.Object()
	if err != nil {
		return reasonJSON
	}
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
		out.AddFieldCopy(k, w.buf)
	})
	return ok
}
