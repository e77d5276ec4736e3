package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/bufbuild/protocompile"
	"github.com/bufbuild/protocompile/linker"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"
)

// plugins are the protoc plugins run on every file, each a `tool` of go.mod.
var plugins = []string{"protoc-gen-go", "protoc-gen-go-grpc"}

func runProto(args []string) error {
	fs := flag.NewFlagSet("proto", flag.ContinueOnError)
	root := fs.String("root", ".", "repository root")
	out := fs.String("out", "", "output root (default -root)")
	include := fs.String("I", "proto", "import directory, relative to -root; file names are relative to it")
	param := fs.String("param", "paths=source_relative", "parameter given to every plugin")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("proto: no .proto file given")
	}
	if *out == "" {
		*out = *root
	}
	req, err := compile(filepath.Join(*root, *include), fs.Args())
	if err != nil {
		return err
	}
	req.Parameter = param
	for _, p := range plugins {
		files, err := runPlugin(p, req)
		if err != nil {
			return err
		}
		for _, f := range files {
			dst := filepath.Join(*out, *include, filepath.FromSlash(f.GetName()))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(dst, []byte(f.GetContent()), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// compile parses and links names (relative to dir) and returns the request
// protoc would send a plugin for them: every file they need, dependencies
// first, with source info (comments) for the files to generate.
func compile(dir string, names []string) (*pluginpb.CodeGeneratorRequest, error) {
	c := protocompile.Compiler{
		Resolver:       protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: []string{dir}}),
		SourceInfoMode: protocompile.SourceInfoStandard,
	}
	files, err := c.Compile(context.Background(), names...)
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	req := &pluginpb.CodeGeneratorRequest{FileToGenerate: names}
	seen := map[string]bool{}
	var add func(f protoreflect.FileDescriptor)
	add = func(f protoreflect.FileDescriptor) {
		if seen[f.Path()] {
			return
		}
		seen[f.Path()] = true
		imports := f.Imports()
		for i := 0; i < imports.Len(); i++ {
			add(imports.Get(i).FileDescriptor)
		}
		var fdp *descriptorpb.FileDescriptorProto
		if r, ok := f.(linker.Result); ok {
			fdp = r.FileDescriptorProto()
		} else {
			fdp = protodesc.ToFileDescriptorProto(f)
		}
		req.ProtoFile = append(req.ProtoFile, fdp)
	}
	for _, f := range files {
		add(f)
	}
	return req, nil
}

// runPlugin runs `go tool name` with req on stdin, as protoc runs a plugin.
func runPlugin(name string, req *pluginpb.CodeGeneratorRequest) ([]*pluginpb.CodeGeneratorResponse_File, error) {
	in, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("go", "tool", name)
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	var resp pluginpb.CodeGeneratorResponse
	if err := proto.Unmarshal(stdout.Bytes(), &resp); err != nil {
		return nil, fmt.Errorf("%s: read response: %w", name, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("%s: %s", name, resp.GetError())
	}
	if uses3Optional(req) && resp.GetSupportedFeatures()&uint64(pluginpb.CodeGeneratorResponse_FEATURE_PROTO3_OPTIONAL) == 0 {
		return nil, fmt.Errorf("%s: does not support proto3 optional fields", name)
	}
	for _, f := range resp.File {
		if f.GetInsertionPoint() != "" || !filepath.IsLocal(filepath.FromSlash(f.GetName())) {
			return nil, fmt.Errorf("%s: unsupported output %q (insertion point %q)", name, f.GetName(), f.GetInsertionPoint())
		}
	}
	return resp.File, nil
}

// uses3Optional tells whether a file to generate has a proto3 optional field,
// which protoc hands only to plugins that declare support for it.
func uses3Optional(req *pluginpb.CodeGeneratorRequest) bool {
	gen := map[string]bool{}
	for _, n := range req.FileToGenerate {
		gen[n] = true
	}
	var inMessages func([]*descriptorpb.DescriptorProto) bool
	inMessages = func(ms []*descriptorpb.DescriptorProto) bool {
		for _, m := range ms {
			for _, f := range m.Field {
				if f.GetProto3Optional() {
					return true
				}
			}
			if inMessages(m.NestedType) {
				return true
			}
		}
		return false
	}
	for _, f := range req.ProtoFile {
		if gen[f.GetName()] && inMessages(f.MessageType) {
			return true
		}
	}
	return false
}
