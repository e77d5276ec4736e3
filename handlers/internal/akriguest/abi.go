//go:build wasip1

package akriguest

import (
	"encoding/binary"
	"runtime"
	"time"
	"unsafe"

	// The preview1 adapter's allocator (build tag wasireactor), so that Go
	// can grow its heap inside the component.
	_ "github.com/wasilet/wasilet/handlers/internal/wasmalloc"
)

var (
	handler Handler
	// results holds what the last export's return area points to, until
	// its post-return function runs.
	results [][]uint64
	// lent holds the blocks cabi_realloc handed to the host (arguments of
	// an export, results of an import) until they are lifted (copied).
	lent [][]uint64
)

// Serve makes h the component's handler. Call it from an init function.
func Serve(h Handler) { handler = h }

// block returns a zeroed, 8-byte aligned block of n bytes kept in *keep.
func block(keep *[][]uint64, n int) (uint32, []byte) {
	if n == 0 {
		return 8, nil // non-null and aligned; never dereferenced
	}
	words := make([]uint64, (n+7)/8)
	*keep = append(*keep, words)
	p := unsafe.Pointer(&words[0])
	return uint32(uintptr(p)), unsafe.Slice((*byte)(p), n)
}

// realloc is the Canonical ABI allocator through which the host places
// strings and lists in this instance's memory.
//
//go:wasmexport cabi_realloc
func realloc(old, oldSize, align, newSize uint32) uint32 {
	if align == 0 || align > 8 || align&(align-1) != 0 {
		panic("cabi_realloc: unsupported alignment")
	}
	p, b := block(&lent, int(newSize))
	if old != 0 && oldSize > 0 {
		copy(b, mem(old, min(oldSize, newSize)))
	}
	return p
}

func mem(p, n uint32) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(uintptr(p))), n)
}

func u32(p uint32) uint32 { return binary.LittleEndian.Uint32(mem(p, 4)) }

func liftString(p, n uint32) string { return string(mem(p, n)) }

func liftProperties(p, n uint32) []Property {
	out := make([]Property, n)
	for i := range out {
		e := p + uint32(i)*sizeProperty
		out[i].Name = liftString(u32(e), u32(e+4))
		if mem(e+8, 1)[0] != 0 {
			out[i].Set = true
			out[i].Value = append([]byte{}, mem(u32(e+12), u32(e+16))...)
		}
	}
	return out
}

// lowering writes into blocks kept in results.
func put32(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }

func lowerString(b []byte, off int, s string) {
	p, d := block(&results, len(s))
	copy(d, s)
	put32(b, off, p)
	put32(b, off+4, uint32(len(s)))
}

func lowerDevices(b []byte, off int, devs []Device) {
	p, d := block(&results, len(devs)*sizeDevice)
	for i, dev := range devs {
		e := d[i*sizeDevice:]
		lowerString(e, 0, dev.ID)
		pp, pd := block(&results, len(dev.Properties)*sizePair)
		for j, kv := range dev.Properties {
			lowerString(pd[j*sizePair:], 0, kv[0])
			lowerString(pd[j*sizePair:], 8, kv[1])
		}
		put32(e, 8, pp)
		put32(e, 12, uint32(len(dev.Properties)))
		mp, md := block(&results, len(dev.Mounts)*sizeMount)
		for j, m := range dev.Mounts {
			lowerString(md[j*sizeMount:], 0, m.ContainerPath)
			lowerString(md[j*sizeMount:], 8, m.HostPath)
			if m.ReadOnly {
				md[j*sizeMount+16] = 1
			}
		}
		put32(e, 16, mp)
		put32(e, 20, uint32(len(dev.Mounts)))
		sp, sd := block(&results, len(dev.DeviceSpecs)*sizeSpec)
		for j, s := range dev.DeviceSpecs {
			lowerString(sd[j*sizeSpec:], 0, s.ContainerPath)
			lowerString(sd[j*sizeSpec:], 8, s.HostPath)
			lowerString(sd[j*sizeSpec:], 16, s.Permissions)
		}
		put32(e, 24, sp)
		put32(e, 28, uint32(len(dev.DeviceSpecs)))
	}
	put32(b, off, p)
	put32(b, off+4, uint32(len(devs)))
}

// lowerResult returns the return area of result<list<device>, string>.
func lowerResult(devs []Device, err error) uint32 {
	results = nil
	p, b := block(&results, sizeResult)
	if err != nil {
		b[0] = 1
		lowerString(b, 4, err.Error())
	} else {
		lowerDevices(b, 4, devs)
	}
	return p
}

func args(dp, dl, pp, pl uint32) (string, []Property) {
	details, props := liftString(dp, dl), liftProperties(pp, pl)
	clear(lent)
	lent = lent[:0]
	return details, props
}

//go:wasmexport akri:discovery/handler@0.1.0#discover
func exportDiscover(dp, dl, pp, pl uint32) uint32 {
	details, props := args(dp, dl, pp, pl)
	if handler == nil {
		return lowerResult(nil, errNoHandler{})
	}
	return lowerResult(handler.Discover(details, props))
}

//go:wasmexport cabi_post_akri:discovery/handler@0.1.0#discover
func postDiscover(uint32) { results = nil }

//go:wasmexport akri:discovery/handler@0.1.0#watch
func exportWatch(dp, dl, pp, pl, deadlineMS uint32) uint32 {
	details, props := args(dp, dl, pp, pl)
	if handler == nil {
		return lowerResult(nil, errNoHandler{})
	}
	return lowerResult(handler.Watch(details, props, time.Duration(deadlineMS)*time.Millisecond))
}

//go:wasmexport cabi_post_akri:discovery/handler@0.1.0#watch
func postWatch(uint32) { results = nil }

type errNoHandler struct{}

func (errNoHandler) Error() string { return "akriguest: no handler (Serve was not called)" }

//go:wasmimport akri:discovery/http@0.1.0 get
func importGet(urlPtr, urlLen, ret uint32)

// HTTPGet sends a GET through the host's akri:discovery/http import. The
// host refuses hosts the handler was not granted.
func HTTPGet(url string) (Response, error) {
	var area [sizeHTTPRet/8 + 1]uint64
	ret := uint32(uintptr(unsafe.Pointer(&area[0])))
	up := uint32(0)
	if len(url) > 0 {
		up = uint32(uintptr(unsafe.Pointer(unsafe.StringData(url))))
	}
	importGet(up, uint32(len(url)), ret)
	runtime.KeepAlive(url)
	defer func() { clear(lent); lent = lent[:0] }()
	b := mem(ret, sizeHTTPRet)
	if b[0] != 0 {
		return Response{}, httpError(liftString(u32(ret+4), u32(ret+8)))
	}
	r := Response{Status: int(binary.LittleEndian.Uint16(b[4:]))}
	hp, hn := u32(ret+8), u32(ret+12)
	for i := uint32(0); i < hn; i++ {
		e := hp + i*sizePair
		r.Headers = append(r.Headers, [2]string{liftString(u32(e), u32(e+4)), liftString(u32(e+8), u32(e+12))})
	}
	r.Body = append([]byte{}, mem(u32(ret+16), u32(ret+20))...)
	runtime.KeepAlive(&area)
	return r, nil
}

type httpError string

func (e httpError) Error() string { return string(e) }
