package wasmtimec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
)

// Kind is a component value's kind (wasmtime's WASMTIME_COMPONENT_*).
type Kind uint8

// The kinds of component values this package passes (resources are not).
const (
	KindBool Kind = iota
	KindS8
	KindU8
	KindS16
	KindU16
	KindS32
	KindU32
	KindS64
	KindU64
	KindF32
	KindF64
	KindChar
	KindString
	KindList
	KindRecord
	KindTuple
	KindVariant
	KindEnum
	KindOption
	KindResult
	KindFlags
)

// Val is a component model value: the arguments and results of Call and of
// host functions. Which fields matter depends on Kind:
//
//   - bool: Bool; integers and char: Int (signed kinds sign-extended) ;
//     f32/f64: Float
//   - string, enum: Str; flags: Names
//   - list, tuple: Elems; record: Fields (names in Names, same order)
//   - variant: Str (case) and Elems[0] if it has a payload
//   - option: Elems[0] if some; result: Ok, Elems[0] if it has a payload
type Val struct {
	Kind  Kind
	Bool  bool
	Int   uint64
	Float float64
	Str   string
	Names []string
	Elems []Val
	Ok    bool
}

// Convenience constructors.
func String(s string) Val    { return Val{Kind: KindString, Str: s} }
func U32(v uint32) Val       { return Val{Kind: KindU32, Int: uint64(v)} }
func U16(v uint16) Val       { return Val{Kind: KindU16, Int: uint64(v)} }
func Bool(v bool) Val        { return Val{Kind: KindBool, Bool: v} }
func List(elems ...Val) Val  { return Val{Kind: KindList, Elems: elems} }
func Tuple(elems ...Val) Val { return Val{Kind: KindTuple, Elems: elems} }
func None() Val              { return Val{Kind: KindOption} }
func Some(v Val) Val         { return Val{Kind: KindOption, Elems: []Val{v}} }
func OK(v Val) Val           { return Val{Kind: KindResult, Ok: true, Elems: []Val{v}} }
func Err(v Val) Val          { return Val{Kind: KindResult, Elems: []Val{v}} }
func Record(names []string, fields ...Val) Val {
	return Val{Kind: KindRecord, Names: names, Elems: fields}
}

// Bytes is a list<u8>.
func Bytes(b []byte) Val {
	elems := make([]Val, len(b))
	for i, c := range b {
		elems[i] = Val{Kind: KindU8, Int: uint64(c)}
	}
	return List(elems...)
}

// Field returns the record field name, or false.
func (v Val) Field(name string) (Val, bool) {
	if v.Kind != KindRecord {
		return Val{}, false
	}
	for i, n := range v.Names {
		if n == name && i < len(v.Elems) {
			return v.Elems[i], true
		}
	}
	return Val{}, false
}

// Payload returns the payload of an option, result or variant, or false.
func (v Val) Payload() (Val, bool) {
	if len(v.Elems) == 0 {
		return Val{}, false
	}
	return v.Elems[0], true
}

// AsBytes returns a list<u8> as bytes.
func (v Val) AsBytes() ([]byte, error) {
	if v.Kind != KindList {
		return nil, fmt.Errorf("want list<u8>, got %s", v.Kind)
	}
	out := make([]byte, len(v.Elems))
	for i, e := range v.Elems {
		if e.Kind != KindU8 {
			return nil, fmt.Errorf("want list<u8>, got list<%s>", e.Kind)
		}
		out[i] = byte(e.Int)
	}
	return out, nil
}

func (k Kind) String() string {
	names := [...]string{"bool", "s8", "u8", "s16", "u16", "s32", "u32", "s64", "u64", "f32", "f64", "char", "string", "list", "record", "tuple", "variant", "enum", "option", "result", "flags"}
	if int(k) < len(names) {
		return names[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// encodeVal appends v in shim.h's encoding.
func encodeVal(b []byte, v Val) ([]byte, error) {
	b = append(b, byte(v.Kind))
	str := func(s string) { b = binary.LittleEndian.AppendUint32(b, uint32(len(s))); b = append(b, s...) }
	var err error
	switch v.Kind {
	case KindBool:
		if v.Bool {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	case KindS8, KindU8, KindS16, KindU16, KindS32, KindU32, KindS64, KindU64, KindChar:
		b = binary.LittleEndian.AppendUint64(b, v.Int)
	case KindF32, KindF64:
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Float))
	case KindString, KindEnum:
		str(v.Str)
	case KindList, KindTuple:
		b = binary.LittleEndian.AppendUint32(b, uint32(len(v.Elems)))
		for _, e := range v.Elems {
			if b, err = encodeVal(b, e); err != nil {
				return nil, err
			}
		}
	case KindRecord:
		if len(v.Names) != len(v.Elems) {
			return nil, errors.New("record: names and fields differ in number")
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(len(v.Elems)))
		for i, e := range v.Elems {
			str(v.Names[i])
			if b, err = encodeVal(b, e); err != nil {
				return nil, err
			}
		}
	case KindVariant, KindOption, KindResult:
		if v.Kind == KindVariant {
			str(v.Str)
		}
		if v.Kind == KindResult {
			b = append(b, boolByte(v.Ok))
		}
		if len(v.Elems) > 1 {
			return nil, fmt.Errorf("%s with %d payloads", v.Kind, len(v.Elems))
		}
		b = append(b, boolByte(len(v.Elems) == 1))
		if len(v.Elems) == 1 {
			if b, err = encodeVal(b, v.Elems[0]); err != nil {
				return nil, err
			}
		}
	case KindFlags:
		b = binary.LittleEndian.AppendUint32(b, uint32(len(v.Names)))
		for _, n := range v.Names {
			str(n)
		}
	default:
		return nil, fmt.Errorf("cannot pass a %s", v.Kind)
	}
	return b, nil
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if uint64(len(d.b)) < n {
		d.err = errors.New("truncated value encoding")
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}
func (d *decoder) u8() byte {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}
func (d *decoder) u32() uint32 {
	if p := d.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}
func (d *decoder) u64() uint64 {
	if p := d.take(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}
func (d *decoder) str() string { return string(d.take(uint64(d.u32()))) }

func (d *decoder) val() Val {
	v := Val{Kind: Kind(d.u8())}
	if d.err != nil {
		return v
	}
	switch v.Kind {
	case KindBool:
		v.Bool = d.u8() != 0
	case KindS8, KindS16, KindS32, KindS64, KindU8, KindU16, KindU32, KindU64, KindChar:
		v.Int = d.u64()
	case KindF32, KindF64:
		v.Float = math.Float64frombits(d.u64())
	case KindString, KindEnum:
		v.Str = d.str()
	case KindList, KindTuple, KindRecord:
		n := d.u32()
		if uint64(n) > uint64(len(d.b)) {
			d.err = errors.New("bad value encoding: count exceeds data")
			return v
		}
		v.Elems = make([]Val, 0, n)
		for i := uint32(0); i < n && d.err == nil; i++ {
			if v.Kind == KindRecord {
				v.Names = append(v.Names, d.str())
			}
			v.Elems = append(v.Elems, d.val())
		}
	case KindVariant, KindOption, KindResult:
		if v.Kind == KindVariant {
			v.Str = d.str()
		}
		if v.Kind == KindResult {
			v.Ok = d.u8() != 0
		}
		if d.u8() != 0 {
			v.Elems = []Val{d.val()}
		}
	case KindFlags:
		n := d.u32()
		for i := uint32(0); i < n && d.err == nil; i++ {
			v.Names = append(v.Names, d.str())
		}
	default:
		d.err = fmt.Errorf("bad value encoding: kind %d", v.Kind)
	}
	return v
}

func decodeVals(b []byte, n int) ([]Val, error) {
	// n < 0: as many values as the encoding holds (a host function's
	// arguments).
	d := decoder{b: b}
	out := make([]Val, 0, max(n, 0))
	for i := 0; n < 0 && len(d.b) > 0 || i < n; i++ {
		out = append(out, d.val())
		if d.err != nil {
			break
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errors.New("bad value encoding: trailing bytes")
	}
	return out, d.err
}

func containsLimit(msg string) bool { return strings.Contains(msg, "exceeds memory limits") }
