package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// usageError is a command line that cannot be run as written: exit 2,
// and the message says where the usage is.
type usageError struct {
	err  error
	path string // the command whose usage applies
}

func (e usageError) Error() string {
	return fmt.Sprintf("%v (see %s --help)", e.err, e.path)
}

func (e usageError) Unwrap() error { return e.err }
func (e usageError) ExitCode() int { return exitUsage }

// asUsage marks err, from cmd's command line, as a usage error.
func asUsage(cmd *cobra.Command, err error) error {
	if err == nil {
		return nil
	}
	return usageError{err: err, path: cmd.CommandPath()}
}

// strict makes every command of the tree under c refuse what it does not
// know: cobra on its own prints a group's help and exits 0 for `weir
// config show`, and reports unknown commands only at the top. Bad flags
// and wrong arguments become usage errors (exit 2); a group run without a
// subcommand prints its help.
func strict(c *cobra.Command) {
	c.InitDefaultHelpCmd()
	c.InitDefaultCompletionCmd()
	c.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return asUsage(cmd, err) })
	strictTree(c)
}

func strictTree(c *cobra.Command) {
	c.SuggestionsMinimumDistance = 2 // what cobra uses at the top level
	if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
		c.Args = subcommandArgs
		c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
	if args := c.Args; len(c.ValidArgs) > 0 {
		// ValidArgs lists the only words the command takes.
		c.Args = cobra.MatchAll(cobra.OnlyValidArgs, orAny(args))
	}
	if args := c.Args; args != nil {
		c.Args = func(cmd *cobra.Command, a []string) error {
			err := args(cmd, a)
			if err != nil && len(a) > 0 && cmd.HasSubCommands() {
				// `weir spool bogus`: name the subcommands, not the
				// argument count.
				err = unknownCommand(cmd, a[0])
			}
			return asUsage(cmd, err)
		}
	}
	for _, s := range c.Commands() {
		strictTree(s)
	}
}

// subcommandArgs refuses any argument to a group: it can only be a
// subcommand cobra did not find.
func subcommandArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	return unknownCommand(cmd, args[0])
}

func unknownCommand(cmd *cobra.Command, name string) error {
	var known []string
	for _, s := range cmd.Commands() {
		if s.IsAvailableCommand() {
			known = append(known, s.Name())
		}
	}
	msg := fmt.Sprintf("unknown command %q for %q", name, cmd.CommandPath())
	if sug := cmd.SuggestionsFor(name); len(sug) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", sug[0])
	} else if len(known) > 0 {
		msg += "; its commands are " + strings.Join(known, ", ")
	}
	return fmt.Errorf("%s", msg)
}

// newHelpCmd replaces cobra's help command, which prints "Unknown help
// topic" and exits 0.
func newHelpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(c *cobra.Command, args []string) error {
			cmd := c.Root()
			for _, a := range args {
				next, _, err := cmd.Find([]string{a})
				if err != nil || next == cmd {
					return asUsage(cmd, unknownCommand(cmd, a))
				}
				cmd = next
			}
			return cmd.Help()
		},
	}
}

// argNamed accepts exactly one argument, called name in the messages.
func argNamed(name string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) == 0:
			return fmt.Errorf("%s is missing", name)
		case len(args) > 1:
			return fmt.Errorf("one %s, not %d arguments (%s)", name, len(args), strings.Join(args, " "))
		}
		return nil
	}
}

func orAny(a cobra.PositionalArgs) cobra.PositionalArgs {
	if a == nil {
		return cobra.ArbitraryArgs
	}
	return a
}
