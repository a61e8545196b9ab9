package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Thrift binary type ids (TType).
const (
	tStop   = 0
	tBool   = 2
	tByte   = 3
	tDouble = 4
	tI16    = 6
	tI32    = 8
	tI64    = 10
	tString = 11
	tStruct = 12
	tMap    = 13
	tSet    = 14
	tList   = 15
)

// maxDepth bounds struct and container nesting; our deepest body nests three.
const maxDepth = 16

var errTruncated = errors.New("truncated")

// validate walks one Thrift-binary struct at the front of buf and checks that
// every length, container size and type id is consistent with the bytes that
// are actually there. The generated readers trust declared sizes (a list
// header can ask for a billion elements in a 10-byte body) and index tables by
// the type byte; validating first keeps a hostile frame from costing more than
// its own length, or crashing the reader. maxElems, when not 0, bounds the
// elements of every container.
func validate(buf []byte, maxElems int) (int, error) {
	v := validator{buf: buf, maxElems: maxElems}
	if err := v.structBody(0); err != nil {
		return v.off, fmt.Errorf("at byte %d: %w", v.off, err)
	}
	return v.off, nil
}

type validator struct {
	buf      []byte
	off      int
	maxElems int
}

func (v *validator) need(n int) error {
	if n < 0 || len(v.buf)-v.off < n {
		return errTruncated
	}
	return nil
}

func (v *validator) u8() (byte, error) {
	if err := v.need(1); err != nil {
		return 0, err
	}
	v.off++
	return v.buf[v.off-1], nil
}

func (v *validator) size() (int, error) {
	if err := v.need(4); err != nil {
		return 0, err
	}
	n := int32(binary.BigEndian.Uint32(v.buf[v.off:]))
	v.off += 4
	if n < 0 {
		return 0, fmt.Errorf("negative size %d", n)
	}
	return int(n), nil
}

func (v *validator) structBody(depth int) error {
	if depth > maxDepth {
		return errors.New("nested too deep")
	}
	for {
		t, err := v.u8()
		if err != nil {
			return err
		}
		if t == tStop {
			return nil
		}
		if err := v.need(2); err != nil { // field id
			return err
		}
		v.off += 2
		if err := v.value(t, depth); err != nil {
			return err
		}
	}
}

func (v *validator) value(t byte, depth int) error {
	if n := fixedSize(t); n > 0 {
		if err := v.need(n); err != nil {
			return err
		}
		v.off += n
		return nil
	}
	switch t {
	case tString:
		n, err := v.size()
		if err != nil {
			return err
		}
		if err := v.need(n); err != nil {
			return err
		}
		v.off += n
		return nil
	case tStruct:
		return v.structBody(depth + 1)
	case tMap:
		return v.mapBody(depth + 1)
	case tSet, tList:
		return v.listBody(depth + 1)
	}
	return fmt.Errorf("unknown field type %d", t)
}

func (v *validator) listBody(depth int) error {
	et, err := v.u8()
	if err != nil {
		return err
	}
	n, err := v.size()
	if err != nil {
		return err
	}
	if err := v.needElems(n, minSize(et)); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if err := v.value(et, depth); err != nil {
			return err
		}
	}
	return nil
}

func (v *validator) mapBody(depth int) error {
	kt, err := v.u8()
	if err != nil {
		return err
	}
	vt, err := v.u8()
	if err != nil {
		return err
	}
	n, err := v.size()
	if err != nil {
		return err
	}
	each := minSize(kt) + minSize(vt)
	if minSize(kt) == 0 || minSize(vt) == 0 {
		each = 0
	}
	if err := v.needElems(n, each); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if err := v.value(kt, depth); err != nil {
			return err
		}
		if err := v.value(vt, depth); err != nil {
			return err
		}
	}
	return nil
}

// needElems rejects a container whose declared element count cannot fit in
// the bytes left, or is over maxElems, before anything iterates or allocates
// for it. each is 0 when an element type is unknown, which is refused even
// for an empty container: readers index tables by the type id.
func (v *validator) needElems(n, each int) error {
	if each <= 0 {
		return errors.New("unknown element type")
	}
	if n > (len(v.buf)-v.off)/each {
		return fmt.Errorf("container of %d elements in %d bytes", n, len(v.buf)-v.off)
	}
	// Only a body that could be read is over a limit; one that lies about
	// its sizes is malformed.
	if v.maxElems > 0 && n > v.maxElems {
		return fmt.Errorf("%w: %d elements, limit %d", ErrTooManyElems, n, v.maxElems)
	}
	return nil
}

func fixedSize(t byte) int {
	switch t {
	case tBool, tByte:
		return 1
	case tI16:
		return 2
	case tI32:
		return 4
	case tI64, tDouble:
		return 8
	}
	return 0
}

// minSize is the fewest bytes one value of type t takes, 0 for an unknown t.
func minSize(t byte) int {
	if n := fixedSize(t); n > 0 {
		return n
	}
	switch t {
	case tString, tMap, tSet, tList:
		return 4
	case tStruct:
		return 1
	}
	return 0
}
