package akriguest

// Canonical ABI layouts (wasm32: 4-byte pointers and lengths) of the
// world's types, as offsets and sizes. Used by the wasip1 bindings (abi.go);
// kept outside them so that layout_test.go checks them natively against a
// Canonical ABI layout of the WIT types.
const (
	sizeString   = 8  // ptr, len
	sizeProperty = 20 // tuple<string, option<list<u8>>>: string 0, option 8 (tag 8, list 12)
	sizeDevice   = 32 // id 0, properties 8, mounts 16, device-specs 24
	sizePair     = 16 // tuple<string, string>
	sizeMount    = 20 // container-path 0, host-path 8, read-only 16
	sizeSpec     = 24 // container-path 0, host-path 8, permissions 16
	sizeResult   = 12 // tag 0, payload 4
	sizeHTTPRet  = 24 // tag 0; ok: status 4, headers 8, body 16; err: string 4
)
