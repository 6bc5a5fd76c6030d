package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"
)

// Decoding follows the Go SDK's gogo-generated Unmarshal on what it accepts
// and rejects (FuzzLogGroupDifferential checks this): unknown fields are
// skipped (groups included), a known field with the wrong wire type is an
// error, missing required fields (Log.Time, the Key and Value of contents
// and tags, SlsLogPackage.data) are errors, varints may be up to 10 bytes.
// Strings are not checked for UTF-8 (proto2 does not require it).

// Decode errors. The error returned by an Unmarshal method is a
// PostBodyInvalid *Error whose message names where in the message the
// problem is; errors.Is finds these causes in it.
var (
	ErrTruncated       = errors.New("truncated message")
	ErrVarintOverflow  = errors.New("varint longer than 10 bytes")
	ErrInvalidTag      = errors.New("invalid field tag")
	ErrWrongWireType   = errors.New("wrong wire type")
	ErrMissingRequired = errors.New("missing required field")
)

// decbuf is a sticky-error reader over a protobuf message: once a read
// fails, d.err is set and later reads return zero values, so callers check
// the error once per field instead of after every read.
type decbuf struct {
	b   []byte
	err error
}

func (d *decbuf) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *decbuf) uvarint() uint64 {
	if len(d.b) > 0 && d.b[0] < 0x80 {
		v := uint64(d.b[0])
		d.b = d.b[1:]
		return v
	}
	return d.uvarintSlow()
}

// uvarintSlow accepts what gogo protobuf accepts: at most 10 bytes, bits
// beyond 64 dropped.
func (d *decbuf) uvarintSlow() uint64 {
	var v uint64
	for i, shift := 0, uint(0); ; i, shift = i+1, shift+7 {
		if shift >= 64 {
			d.fail(ErrVarintOverflow)
			return 0
		}
		if i >= len(d.b) {
			d.fail(ErrTruncated)
			return 0
		}
		c := d.b[i]
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			d.b = d.b[i+1:]
			return v
		}
	}
}

// bytes reads a length-delimited payload.
func (d *decbuf) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail(ErrTruncated)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// str reads a length-delimited payload as a string aliasing the buffer.
func (d *decbuf) str() string {
	return aliasString(d.bytes())
}

func (d *decbuf) fixed32() uint32 {
	if len(d.b) < 4 {
		d.fail(ErrTruncated)
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

// tag reads a field tag and rejects what gogo rejects: field number 0 (or
// negative as int32) and an end-group marker outside a group.
func (d *decbuf) tag() uint64 {
	t := d.uvarint()
	if d.err != nil {
		return 0
	}
	if int32(t>>3) <= 0 || t&7 == wireEndGroup {
		d.fail(fmt.Errorf("%w %#x", ErrInvalidTag, t))
		return 0
	}
	return t
}

// skip skips the value of a field whose tag t was read and whose number is
// not one the message knows (known field numbers with an unexpected wire
// type are rejected by the callers via wrongWire).
func (d *decbuf) skip(t uint64) {
	depth := 0
	for {
		switch t & 7 {
		case wireVarint:
			d.uvarint()
		case wireFixed64:
			if len(d.b) < 8 {
				d.fail(ErrTruncated)
			} else {
				d.b = d.b[8:]
			}
		case wireBytes:
			d.bytes()
		case wireStartGroup:
			depth++
		case wireEndGroup:
			depth--
		case wireFixed32:
			if len(d.b) < 4 {
				d.fail(ErrTruncated)
			} else {
				d.b = d.b[4:]
			}
		default:
			d.fail(fmt.Errorf("%w %d", ErrWrongWireType, t&7))
		}
		if d.err != nil || depth == 0 {
			return
		}
		// Inside a group: read the next tag (any field number, as gogo).
		if len(d.b) == 0 {
			d.fail(ErrTruncated)
			return
		}
		t = d.uvarint()
	}
}

// unknown handles a tag the message's switch did not match: a known field
// number (bit set in known) with the wrong wire type is an error, anything
// else is skipped.
func (d *decbuf) unknown(t uint64, known uint32, names string) {
	if f := t >> 3; f < 32 && known&(1<<f) != 0 {
		d.fail(fmt.Errorf("%w %d for field %d of %s", ErrWrongWireType, t&7, f, names))
		return
	}
	d.skip(t)
}

const (
	// Field 3 of Log (values) and of SlsLogPackage (compress_type) are
	// extensions the SDK does not know: with an unexpected wire type they
	// are skipped as unknown, as the SDK would, rather than rejected.
	knownLogFields     = 1<<1 | 1<<2 | 1<<4
	knownKVFields      = 1<<1 | 1<<2
	knownGroupFields   = 1<<1 | 1<<2 | 1<<3 | 1<<4 | 1<<5 | 1<<6
	knownListFields    = 1 << 1
	knownPackageFields = 1<<1 | 1<<2
)

func missing(field string) error {
	return fmt.Errorf("%w %s", ErrMissingRequired, field)
}

// shortLen parses a length prefix of one or two bytes (lengths below
// 16 KiB, nearly every key and value) at b[i:]. ok is false for anything
// else, including a length past the end of b; callers then take the general
// path, which reports the error. Small enough to be inlined.
func shortLen(b []byte, i int) (start, end int, ok bool) {
	if i >= len(b) {
		return 0, 0, false
	}
	n := int(b[i])
	i++
	if n >= 0x80 {
		if i >= len(b) || b[i] >= 0x80 {
			return 0, 0, false
		}
		n = n&0x7f | int(b[i])<<7
		i++
	}
	if n > len(b)-i {
		return 0, 0, false
	}
	return i, i + n, true
}

func aliasString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// unmarshalKV decodes a LogContent or LogTag body.
func unmarshalKV(b []byte, key, value *string) error {
	// Fast path: exactly Key then Value with short lengths, which is what
	// every encoder writes.
	if len(b) >= 4 && b[0] == tagKVKey {
		if ks, ke, ok := shortLen(b, 1); ok && ke < len(b) && b[ke] == tagKVValue {
			if vs, ve, ok := shortLen(b, ke+1); ok && ve == len(b) {
				*key, *value = aliasString(b[ks:ke]), aliasString(b[vs:ve])
				return nil
			}
		}
	}
	return unmarshalKVSlow(b, key, value)
}

func unmarshalKVSlow(b []byte, key, value *string) error {
	d := decbuf{b: b}
	var has uint8
	for len(d.b) > 0 {
		switch t := d.tag(); t {
		case tagKVKey:
			*key = d.str()
			has |= 1
		case tagKVValue:
			*value = d.str()
			has |= 2
		default:
			d.unknown(t, knownKVFields, "key/value")
		}
		if d.err != nil {
			return d.err
		}
	}
	switch {
	case has&1 == 0:
		return missing("Key")
	case has&2 == 0:
		return missing("Value")
	}
	return nil
}

func (l *Log) nextContent() *LogContent {
	if n := len(l.Contents); n < cap(l.Contents) {
		l.Contents = l.Contents[:n+1]
	} else {
		l.Contents = append(l.Contents, LogContent{})
	}
	return &l.Contents[len(l.Contents)-1]
}

// unmarshal decodes a Log body into l, which must be Reset.
func (l *Log) unmarshal(b []byte) error {
	d := decbuf{b: b}
	hasTime := false
	for len(d.b) > 0 {
		// Fast path for the field that dominates every Log.
		if d.b[0] == tagLogContents {
			if s, e, ok := shortLen(d.b, 1); ok {
				c := l.nextContent()
				if err := unmarshalKV(d.b[s:e], &c.Key, &c.Value); err != nil {
					return fmt.Errorf("Contents[%d]: %w", len(l.Contents)-1, err)
				}
				d.b = d.b[e:]
				continue
			}
		}
		switch t := d.tag(); t {
		case tagLogContents:
			data := d.bytes()
			if d.err != nil {
				break
			}
			c := l.nextContent()
			if err := unmarshalKV(data, &c.Key, &c.Value); err != nil {
				return fmt.Errorf("Contents[%d]: %w", len(l.Contents)-1, err)
			}
		case tagLogTime:
			l.Time = uint32(d.uvarint())
			hasTime = true
		case tagLogTimeNs:
			l.TimeNs = d.fixed32()
			l.HasTimeNs = true
		case tagLogValues:
			v := d.str()
			if d.err == nil {
				l.Values = append(l.Values, v)
			}
		default:
			d.unknown(t, knownLogFields, "Log")
		}
		if d.err != nil {
			return d.err
		}
	}
	if !hasTime {
		return missing("Time")
	}
	return nil
}

func (g *LogGroup) nextLog() *Log {
	if n := len(g.Logs); n < cap(g.Logs) {
		g.Logs = g.Logs[:n+1]
	} else {
		g.Logs = append(g.Logs, Log{})
	}
	l := &g.Logs[len(g.Logs)-1]
	l.Reset()
	return l
}

func (g *LogGroup) nextTag() *LogTag {
	if n := len(g.LogTags); n < cap(g.LogTags) {
		g.LogTags = g.LogTags[:n+1]
	} else {
		g.LogTags = append(g.LogTags, LogTag{})
	}
	return &g.LogTags[len(g.LogTags)-1]
}

func (g *LogGroup) unmarshal(b []byte) error {
	d := decbuf{b: b}
	for len(d.b) > 0 {
		switch t := d.tag(); t {
		case tagGroupLogs:
			data := d.bytes()
			if d.err != nil {
				break
			}
			if err := g.nextLog().unmarshal(data); err != nil {
				return fmt.Errorf("Logs[%d]: %w", len(g.Logs)-1, err)
			}
		case tagGroupCategory:
			g.Category = d.str()
		case tagGroupTopic:
			g.Topic = d.str()
		case tagGroupSource:
			g.Source = d.str()
		case tagGroupMachineUUID:
			g.MachineUUID = d.str()
		case tagGroupLogTags:
			data := d.bytes()
			if d.err != nil {
				break
			}
			tag := g.nextTag()
			if err := unmarshalKV(data, &tag.Key, &tag.Value); err != nil {
				return fmt.Errorf("LogTags[%d]: %w", len(g.LogTags)-1, err)
			}
		default:
			d.unknown(t, knownGroupFields, "LogGroup")
		}
		if d.err != nil {
			return d.err
		}
	}
	return nil
}

func invalid(msg string, err error) error {
	return Errorf(CodePostBodyInvalid, "invalid %s protobuf: %w", msg, err)
}

// Unmarshal decodes a protobuf LogGroup into g, replacing its contents and
// reusing its slices. Strings alias b (see the package documentation). On
// error g holds a partial result and the error is a PostBodyInvalid *Error.
func (g *LogGroup) Unmarshal(b []byte) error {
	g.Reset()
	if err := g.unmarshal(b); err != nil {
		return invalid("LogGroup", err)
	}
	return nil
}

// Unmarshal decodes a protobuf LogGroupList into gl, replacing its contents
// and reusing its slices (the groups' too). Strings alias b.
func (gl *LogGroupList) Unmarshal(b []byte) error {
	gl.Reset()
	d := decbuf{b: b}
	for len(d.b) > 0 {
		switch t := d.tag(); t {
		case tagListGroups:
			data := d.bytes()
			if d.err != nil {
				break
			}
			if n := len(gl.LogGroups); n < cap(gl.LogGroups) {
				gl.LogGroups = gl.LogGroups[:n+1]
			} else {
				gl.LogGroups = append(gl.LogGroups, LogGroup{})
			}
			g := &gl.LogGroups[len(gl.LogGroups)-1]
			g.Reset()
			if err := g.unmarshal(data); err != nil {
				return invalid("LogGroupList", fmt.Errorf("LogGroups[%d]: %w", len(gl.LogGroups)-1, err))
			}
		default:
			d.unknown(t, knownListFields, "LogGroupList")
		}
		if d.err != nil {
			return invalid("LogGroupList", d.err)
		}
	}
	return nil
}

func (p *SlsLogPackage) unmarshal(b []byte) error {
	d := decbuf{b: b}
	hasData := false
	for len(d.b) > 0 {
		switch t := d.tag(); t {
		case tagPackageData:
			p.Data = d.bytes()
			hasData = true
		case tagPackageUncompressSize:
			p.UncompressSize = int32(d.uvarint())
			p.HasUncompressSize = true
		case tagPackageCompressType:
			p.CompressType = CompressType(int32(d.uvarint()))
			p.HasCompressType = true
		default:
			d.unknown(t, knownPackageFields, "SlsLogPackage")
		}
		if d.err != nil {
			return d.err
		}
	}
	if !hasData {
		return missing("data")
	}
	return nil
}

// Unmarshal decodes a protobuf SlsLogPackage into p. Data aliases b.
func (p *SlsLogPackage) Unmarshal(b []byte) error {
	p.Reset()
	if err := p.unmarshal(b); err != nil {
		return invalid("SlsLogPackage", err)
	}
	return nil
}

// Unmarshal decodes a protobuf SlsLogPackageList into pl, reusing its
// slice. Data fields alias b.
func (pl *SlsLogPackageList) Unmarshal(b []byte) error {
	pl.Reset()
	d := decbuf{b: b}
	for len(d.b) > 0 {
		switch t := d.tag(); t {
		case tagListGroups:
			data := d.bytes()
			if d.err != nil {
				break
			}
			pl.Packages = append(pl.Packages, SlsLogPackage{})
			if err := pl.Packages[len(pl.Packages)-1].unmarshal(data); err != nil {
				return invalid("SlsLogPackageList", fmt.Errorf("packages[%d]: %w", len(pl.Packages)-1, err))
			}
		default:
			d.unknown(t, knownListFields, "SlsLogPackageList")
		}
		if d.err != nil {
			return invalid("SlsLogPackageList", d.err)
		}
	}
	return nil
}
