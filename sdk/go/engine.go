// Package engine writes `engine` task plugins in Go (guest ABI v1, see
// docs/abi.md). Build a plugin as a WASI reactor with Go >= 1.24:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o mytask.wasm .
//
// The plugin's main package registers its task function in init and has an
// empty main (a reactor's main never runs):
//
//	func init() { engine.Task(run) }
//	func main() {}
//
// This package exports `run` and `engine_abi_v1` for you. Go cannot emit
// custom wasm sections, so the `engine.task` metadata section is added after
// the build by the helper command in ./cmd/addmeta:
//
//	go run engine.local/sdk/cmd/addmeta -o mytask.wasm mytask.wasm meta.json
//
// The package never depends on the engine; it only speaks the ABI.
package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
)

// Chunk is the size of an Output's write buffer and the read size used by
// bufio over an Input.
const Chunk = 64 * 1024

// Level is a log level, as the `log` host call numbers them.
type Level int32

const (
	Trace Level = 0
	Debug Level = 1
	Info  Level = 2
	Warn  Level = 3
	Error Level = 4
)

// Log appends `[level] message` to the task log (fmt.Sprintf syntax).
func Log(level Level, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	sysLog(int32(level), strPtr(msg), int32(len(msg)))
}

// Item is one input item as the host describes it.
type Item struct {
	item int32
	// Name is the input name from the pipeline, e.g. "text".
	Name string
	// Index is the position within a list input, -1 for a scalar input.
	Index int
	// Len is the length in bytes.
	Len int64
}

// Label is `name` for a scalar input and `name[index]` for a list item.
func (i Item) Label() string {
	if i.Index < 0 {
		return i.Name
	}
	return fmt.Sprintf("%s[%d]", i.Name, i.Index)
}

// Input reads one input item in chunks through `input_read`; it is an
// io.Reader (wrap it in a bufio.Reader or bufio.Scanner for lines), so a
// blob never has to fit in memory.
type Input struct {
	Item
	pos int64
}

// Read implements io.Reader.
func (in *Input) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	want := len(p)
	if want > 1<<30 {
		want = 1 << 30
	}
	n := sysInputRead(in.item, in.pos, ptr(p), int32(want))
	if n < 0 {
		return 0, fmt.Errorf("host refused to read input `%s`", in.Label())
	}
	if n == 0 {
		return 0, io.EOF
	}
	in.pos += int64(n)
	return int(n), nil
}

// ReadAll reads the rest of the input into memory.
func (in *Input) ReadAll() ([]byte, error) {
	b := make([]byte, 0, in.Len-in.pos)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := in.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// Output is a named output: an io.Writer whose bytes go to the host in
// 64 KiB chunks. Call Close at the end to flush and see errors.
type Output struct {
	name   string
	handle int32
	buf    []byte
}

func (o *Output) send(p []byte) error {
	for len(p) > 0 {
		n := len(p)
		if n > 1<<30 {
			n = 1 << 30
		}
		if sysOutputWrite(o.handle, ptr(p), int32(n)) < 0 {
			return fmt.Errorf("host refused to write output `%s`", o.name)
		}
		p = p[n:]
	}
	return nil
}

// Write implements io.Writer.
func (o *Output) Write(p []byte) (int, error) {
	if len(o.buf)+len(p) > Chunk {
		if err := o.Flush(); err != nil {
			return 0, err
		}
	}
	if len(p) >= Chunk {
		if err := o.send(p); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	o.buf = append(o.buf, p...)
	return len(p), nil
}

// WriteString implements io.StringWriter.
func (o *Output) WriteString(s string) (int, error) {
	if len(o.buf)+len(s) > Chunk || len(s) >= Chunk {
		return o.Write([]byte(s))
	}
	o.buf = append(o.buf, s...)
	return len(s), nil
}

// Flush hands buffered bytes to the host.
func (o *Output) Flush() error {
	err := o.send(o.buf)
	o.buf = o.buf[:0]
	return err
}

// Close flushes; the output is complete.
func (o *Output) Close() error { return o.Flush() }

// Context is what a running task sees: its input items, params and outputs.
type Context struct {
	items  []Item
	params []byte
}

func newContext() *Context {
	count := sysInputCount()
	c := &Context{}
	for item := int32(0); item < count; item++ {
		buf := make([]byte, 256)
		n := sysInputName(item, ptr(buf), int32(len(buf)))
		if n > int32(len(buf)) {
			buf = make([]byte, n)
			n = sysInputName(item, ptr(buf), int32(len(buf)))
		}
		if n < 0 {
			continue
		}
		idx := sysInputIndex(item)
		if idx < -1 {
			continue
		}
		c.items = append(c.items, Item{item: item, Name: string(buf[:n]), Index: int(idx), Len: sysInputLen(item)})
	}
	return c
}

// Items is every input item, in the host's order.
func (c *Context) Items() []Item { return c.items }

// HasInput reports whether an input with this name was given.
func (c *Context) HasInput(name string) bool {
	for _, i := range c.items {
		if i.Name == name {
			return true
		}
	}
	return false
}

// Input is the scalar input name; the error reads "missing input `name`" or
// "input `name` is a list; expected a single input".
func (c *Context) Input(name string) (*Input, error) {
	var found []Item
	for _, i := range c.items {
		if i.Name == name {
			found = append(found, i)
		}
	}
	switch {
	case len(found) == 0:
		return nil, fmt.Errorf("missing input `%s`", name)
	case len(found) == 1 && found[0].Index < 0:
		return &Input{Item: found[0]}, nil
	default:
		return nil, fmt.Errorf("input `%s` is a list; expected a single input", name)
	}
}

// InputList is every item of the list input name, ordered by index. A
// scalar input is a list of one; a missing input is an empty list.
func (c *Context) InputList(name string) []*Input {
	var list []*Input
	for _, i := range c.items {
		if i.Name == name {
			list = append(list, &Input{Item: i})
		}
	}
	sort.SliceStable(list, func(a, b int) bool { return list[a].Index < list[b].Index })
	return list
}

// ParamsJSON is the params JSON text as the host passed it ("{}" when empty).
func (c *Context) ParamsJSON() []byte {
	if c.params == nil {
		n := sysParamsLen()
		if n < 0 {
			n = 0
		}
		buf := make([]byte, n)
		got := sysParamsRead(ptr(buf), n)
		if got < 0 {
			got = 0
		}
		buf = buf[:got]
		if strings.TrimSpace(string(buf)) == "" {
			buf = []byte("{}")
		}
		c.params = buf
	}
	return c.params
}

// Params decodes the params JSON into v (a pointer to a struct whose fields
// already hold the defaults). Errors read "invalid params: unknown field `x`"
// for a param v has no field for, "param `x` must be <kind>" (an integer,
// an integer >= 0, a boolean, a string, ...) for a value of the wrong type,
// and "invalid params: <encoding/json message>" otherwise.
func (c *Context) Params(v any) error {
	dec := json.NewDecoder(bytes.NewReader(c.ParamsJSON()))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return fmt.Errorf("param `%s` must be %s", typeErr.Field, kind(typeErr.Type))
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if name, ok := strings.CutPrefix(msg, "unknown field "); ok {
		msg = "unknown field `" + strings.Trim(name, `"`) + "`"
	}
	return fmt.Errorf("invalid params: %s", msg)
}

// kind describes a Go type the way params errors name JSON values.
func kind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer >= 0"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Pointer:
		return kind(t.Elem())
	default:
		return "an object"
	}
}

// Output opens output name ("out" is the default output). An invalid or
// duplicate name fails the task (the host traps).
func (c *Context) Output(name string) *Output {
	h := sysOutputOpen(strPtr(name), int32(len(name)))
	return &Output{name: name, handle: h, buf: make([]byte, 0, Chunk)}
}

var task func(*Context) error

// Task registers the task function; call it once, from an init function.
// A returned error becomes the task's error message.
func Task(run func(*Context) error) { task = run }

// Fail is an error whose text is the task's error message (fmt.Errorf syntax).
func Fail(format string, args ...any) error { return fmt.Errorf(format, args...) }

//go:wasmexport run
func run() int32 {
	if task == nil {
		report(errors.New("no task registered: call engine.Task(fn) in an init function"))
		return 1
	}
	if err := task(newContext()); err != nil {
		report(err)
		return 1
	}
	return 0
}

func report(err error) {
	msg := err.Error()
	sysError(strPtr(msg), int32(len(msg)))
}

//go:wasmexport engine_abi_v1
func abiV1() {}
