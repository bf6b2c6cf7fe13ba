package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/weirgw/weir/gateway/console"
)

// Bounds on a console password.
const (
	minPasswordLen = 8
	maxPasswordLen = 1024
)

func newPasswdCmd() *cobra.Command {
	var (
		fromStdin bool
		alg       string
	)
	cmd := &cobra.Command{
		Use:   "passwd",
		Short: "Print a password hash for console.password_hash (asks twice, without echo; --stdin for scripts)",
		Long: `Print the hash of a new console password, for console.password_hash in the
configuration (or WEIR_CONSOLE_PASSWORD_HASH). The password is asked for twice on
the terminal, without echo; with --stdin it is read once, as the first line of
standard input. argon2id (64 MiB, 3 passes, 4 lanes; PHC string form) unless
--algorithm bcrypt (cost 12). At least 8 characters.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a := console.Algorithm(alg)
			if a != console.Argon2id && a != console.Bcrypt {
				return fmt.Errorf("passwd: --algorithm %q: want argon2id or bcrypt", alg)
			}
			var pw []byte
			var err error
			if fromStdin {
				pw, err = readPasswordLine(cmd.InOrStdin())
			} else {
				pw, err = askPassword(cmd.InOrStdin(), cmd.ErrOrStderr())
			}
			if err != nil {
				return err
			}
			if n := len([]rune(string(pw))); n < minPasswordLen {
				return fmt.Errorf("passwd: %d characters; want at least %d", n, minPasswordLen)
			}
			if a == console.Bcrypt && len(pw) > 72 {
				return errors.New("passwd: bcrypt takes at most 72 bytes; use argon2id for longer passwords")
			}
			h, err := console.HashPassword(pw, a)
			if err != nil {
				return err
			}
			printf(cmd.OutOrStdout(), "%s\n", h)
			return nil
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "stdin", false, "read the password from the first line of standard input (no confirmation)")
	cmd.Flags().StringVar(&alg, "algorithm", string(console.Argon2id), "argon2id or bcrypt")
	return cmd
}

// readPasswordLine reads the first line of r, without its line end.
func readPasswordLine(r io.Reader) ([]byte, error) {
	line, err := bufio.NewReaderSize(io.LimitReader(r, maxPasswordLen+2), maxPasswordLen+2).ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("passwd: read stdin: %w", err)
	}
	line = bytes.TrimRight(line, "\r\n")
	if len(line) > maxPasswordLen {
		return nil, fmt.Errorf("passwd: longer than %d bytes", maxPasswordLen)
	}
	return line, nil
}

// askPassword reads the password twice from the terminal in without echo,
// prompting on w.
func askPassword(in io.Reader, w io.Writer) ([]byte, error) {
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, errors.New("passwd: stdin is not a terminal; use --stdin to read the password from it")
	}
	fd := int(f.Fd())
	printf(w, "New console password: ")
	a, err := term.ReadPassword(fd)
	printf(w, "\n")
	if err != nil {
		return nil, fmt.Errorf("passwd: %w", err)
	}
	printf(w, "Again: ")
	b, err := term.ReadPassword(fd)
	printf(w, "\n")
	if err != nil {
		return nil, fmt.Errorf("passwd: %w", err)
	}
	if !bytes.Equal(a, b) {
		return nil, errors.New("passwd: the two passwords differ")
	}
	if len(a) > maxPasswordLen {
		return nil, fmt.Errorf("passwd: longer than %d bytes", maxPasswordLen)
	}
	return a, nil
}
