// Command otpgate is the one otpgate binary: the server (serve), configuration
// checks (config check), admin API clients (clients, keys), a load generator
// (bench) and its version. It parses flags and calls packages; nothing imports it.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	if err := rootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "otpgate:", err)
		os.Exit(1)
	}
}

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "otpgate",
		Short:         "An OpenID Connect provider whose login is a phone number verified by SMS",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCommand(), configCommand(), versionCommand(), healthcheckCommand())
	root.AddCommand(clientsCommand(), keysCommand())
	root.AddCommand(benchCommand())
	return root
}

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "otpgate", version)
		},
	}
}
