package akriguest

import "testing"

// abiType is a WIT type's Canonical ABI layout in linear memory (wasm32),
// computed as the spec does (CanonicalABI.md: size, alignment,
// discriminant_type), so that the hand-written constants of the bindings
// can be checked against the world's types.
type abiType struct {
	size, align int
	offsets     []int // of a record's or tuple's fields; of a variant: [payload]
}

func alignTo(n, a int) int { return (n + a - 1) / a * a }

var (
	abiBool   = abiType{size: 1, align: 1}
	abiU16    = abiType{size: 2, align: 2}
	abiString = abiType{size: 8, align: 4} // also list<T>: ptr, len
	abiList   = abiString
)

func abiRecord(fields ...abiType) abiType {
	t := abiType{align: 1}
	n := 0
	for _, f := range fields {
		n = alignTo(n, f.align)
		t.offsets = append(t.offsets, n)
		n += f.size
		t.align = max(t.align, f.align)
	}
	t.size = alignTo(n, t.align)
	return t
}

// abiVariant: a u8 discriminant (fewer than 256 cases) and the largest
// payload (nil: a case without payload).
func abiVariant(cases ...*abiType) abiType {
	size, align := 0, 1
	for _, c := range cases {
		if c != nil {
			size, align = max(size, c.size), max(align, c.align)
		}
	}
	payload := alignTo(1, align)
	return abiType{size: alignTo(payload+size, align), align: align, offsets: []int{payload}}
}

func TestCanonicalABILayout(t *testing.T) {
	option := func(p abiType) abiType { return abiVariant(nil, &p) }
	result := func(ok, err abiType) abiType { return abiVariant(&ok, &err) }

	property := abiRecord(abiString, option(abiList)) // tuple<string, option<list<u8>>>
	pair := abiRecord(abiString, abiString)           // tuple<string, string>
	mount := abiRecord(abiString, abiString, abiBool)
	spec := abiRecord(abiString, abiString, abiString)
	device := abiRecord(abiString, abiList, abiList, abiList)
	watchResult := result(abiList, abiString) // result<list<device>, string>
	response := abiRecord(abiU16, abiList, abiList)
	getResult := result(response, abiString) // result<response, string>

	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"string", abiString.size, sizeString},
		{"property", property.size, sizeProperty},
		{"property option (tag)", property.offsets[1], 8},
		{"property option payload (list)", property.offsets[1] + option(abiList).offsets[0], 12},
		{"pair", pair.size, sizePair},
		{"pair value", pair.offsets[1], 8},
		{"mount", mount.size, sizeMount},
		{"mount read-only", mount.offsets[2], 16},
		{"device-spec", spec.size, sizeSpec},
		{"device-spec permissions", spec.offsets[2], 16},
		{"device", device.size, sizeDevice},
		{"device properties", device.offsets[1], 8},
		{"device mounts", device.offsets[2], 16},
		{"device device-specs", device.offsets[3], 24},
		{"watch result", watchResult.size, sizeResult},
		{"watch result payload", watchResult.offsets[0], 4},
		{"http result", getResult.size, sizeHTTPRet},
		{"http result payload", getResult.offsets[0], 4},
		{"http status", getResult.offsets[0] + response.offsets[0], 4},
		{"http headers", getResult.offsets[0] + response.offsets[1], 8},
		{"http body", getResult.offsets[0] + response.offsets[2], 16},
	} {
		if c.got != c.want {
			t.Errorf("%s: Canonical ABI gives %d, the bindings use %d", c.name, c.got, c.want)
		}
	}
}
