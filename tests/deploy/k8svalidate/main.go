// k8svalidate decodes every document of multi-document YAML streams strictly
// against the Kubernetes API types of client-go's scheme: an unknown field, a
// duplicate field, a value of the wrong type or a kind the scheme does not
// know fails. It prints "Kind/name OK" per object, and exits 1 naming each
// document that failed.
//
//	k8svalidate [-todoevents] [-q] [FILE|-]...
//
// With no FILE (or "-") it reads stdin. -todoevents also checks that the
// rendered todoevents Helm chart holds, for each daemon, a Deployment,
// Service, ConfigMap, HorizontalPodAutoscaler and PodDisruptionBudget, the
// migration and topics hook Jobs, and that every container is locked down
// and probed (checks.go).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("k8svalidate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	todo := fs.Bool("todoevents", false, "also check the rendered todoevents chart (daemons, hooks, security, probes)")
	quiet := fs.Bool("q", false, "print only problems")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: k8svalidate [-todoevents] [-q] [FILE|-]...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	inputs := fs.Args()
	if len(inputs) == 0 {
		inputs = []string{"-"}
	}
	var docs []Doc
	var errs []error
	for _, in := range inputs {
		var r io.Reader
		name := in
		if in == "-" {
			r, name = stdin, "stdin"
		} else {
			f, err := os.Open(in)
			if err != nil {
				fmt.Fprintf(stderr, "k8svalidate: %v\n", err)
				return 2
			}
			defer f.Close()
			r = f
		}
		d, e := Decode(name, r)
		docs = append(docs, d...)
		errs = append(errs, e...)
	}
	if !*quiet {
		for i := range docs {
			fmt.Fprintf(stdout, "%s OK\n", docs[i].ID())
		}
	}
	for _, e := range errs {
		fmt.Fprintf(stderr, "FAIL %v\n", e)
	}
	var problems []string
	if *todo {
		problems = CheckChart(docs, TodoDaemons, HookJobs)
		for _, p := range problems {
			fmt.Fprintf(stderr, "FAIL check: %s\n", p)
		}
	}
	if len(docs) == 0 && len(errs) == 0 {
		fmt.Fprintln(stderr, "k8svalidate: no documents in the input")
		return 1
	}
	if len(errs) > 0 || len(problems) > 0 {
		fmt.Fprintf(stderr, "k8svalidate: %d of %d documents failed to decode, %d check problems\n",
			len(errs), len(errs)+len(docs), len(problems))
		return 1
	}
	fmt.Fprintf(stdout, "k8svalidate: %d documents decoded strictly", len(docs))
	if *todo {
		fmt.Fprint(stdout, ", todoevents chart checks passed")
	}
	fmt.Fprintln(stdout)
	return 0
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
