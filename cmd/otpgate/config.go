package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/otpgate/otpgate/config"
)

func configCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with configuration files"}
	var dev bool
	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a configuration file and print every problem at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(args[0], dev, os.Getenv)
			if err == nil && len(cfg.SMS.Providers) > 0 {
				// Provider options are decoded by the sender registry, not by config.
				_, err = smsSetup(cfg.SMS).Decode(dev)
			}
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: invalid configuration:\n%s\n", args[0], indent(err))
				return errors.New("configuration check failed")
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", args[0])
			return nil
		},
	}
	check.Flags().BoolVar(&dev, "dev", false, "check with the --dev defaults underneath")
	cmd.AddCommand(check)
	return cmd
}

// indent prints one problem per line, indented.
func indent(err error) string {
	lines := strings.FieldsFunc(err.Error(), func(r rune) bool { return r == '\n' })
	return "  - " + strings.Join(lines, "\n  - ")
}
