package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

// Doc is one decoded document of a YAML stream.
type Doc struct {
	Input    string // file name, or "stdin"
	Index    int    // 1-based position in the input, counting every non-empty document
	Template string // the "# Source: ..." comment Helm puts above each document, if any
	GVK      schema.GroupVersionKind
	Obj      runtime.Object
}

// Where names the document for messages:
// "stdin document 3 (todoevents/templates/x.yaml, kind Deployment)".
func (d *Doc) Where() string {
	var what []string
	if d.Template != "" {
		what = append(what, d.Template)
	}
	if d.GVK.Kind != "" {
		what = append(what, "kind "+d.GVK.Kind)
	}
	s := fmt.Sprintf("%s document %d", d.Input, d.Index)
	if len(what) > 0 {
		s += " (" + strings.Join(what, ", ") + ")"
	}
	return s
}

// ID is "Kind/name".
func (d *Doc) ID() string {
	name := ""
	if m, err := meta.Accessor(d.Obj); err == nil {
		name = m.GetName()
	}
	return d.GVK.Kind + "/" + name
}

// strictDecoder decodes YAML into the typed Kubernetes objects registered in
// client-go's scheme. Strict: unknown fields, duplicate fields and values of
// the wrong type are errors, and so is a kind the scheme does not know.
var strictDecoder = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
	json.SerializerOptions{Yaml: true, Strict: true})

// isBlank reports whether a document holds nothing but comments and white space.
func isBlank(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") && t != "---" && t != "..." {
			return false
		}
	}
	return true
}

func sourceComment(doc []byte) string {
	for _, line := range strings.Split(string(doc), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "# Source:") {
			return strings.TrimSpace(strings.TrimPrefix(t, "# Source:"))
		}
	}
	return ""
}

// DecodeError is a document that did not decode.
type DecodeError struct {
	Doc Doc
	Err error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("%s: %s", e.Doc.Where(), describe(e.Err))
}

func describe(err error) string {
	switch {
	case runtime.IsNotRegisteredError(err):
		return "unknown kind (not a Kubernetes API type of client-go's scheme): " + err.Error()
	case runtime.IsMissingKind(err):
		return "no kind: the document has no 'kind' field"
	case runtime.IsMissingVersion(err):
		return "no apiVersion: the document has no 'apiVersion' field"
	case runtime.IsStrictDecodingError(err):
		return "strict decoding failed: " + err.Error()
	}
	return "does not decode: " + err.Error()
}

// Decode reads a multi-document YAML stream and decodes every non-blank
// document strictly. It returns the documents that decoded and one error per
// document that did not (reading stops only on an I/O or framing error).
func Decode(input string, r io.Reader) ([]Doc, []error) {
	var docs []Doc
	var errs []error
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	index := 0
	for {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: cannot read the YAML stream after document %d: %w", input, index, err))
			break
		}
		if isBlank(raw) {
			continue
		}
		index++
		d := Doc{Input: input, Index: index, Template: sourceComment(raw)}
		obj, gvk, err := strictDecoder.Decode(bytes.TrimSpace(raw), nil, nil)
		if gvk != nil {
			d.GVK = *gvk
		}
		if err != nil {
			errs = append(errs, &DecodeError{Doc: d, Err: err})
			continue
		}
		d.Obj = obj
		docs = append(docs, d)
	}
	return docs, errs
}
