package client

import (
	"github.com/spf13/pflag"
)

// Flags are the command-line flags of a CLI command that talks to a node.
// Bind them with AddFlags, then call Load.
type Flags struct {
	Server     string
	Token      string
	TokenFile  string
	ConfigFile string
}

// AddFlags adds --server, --token, --token-file and --client-config to fs
// (a cobra command's Flags()).
func (f *Flags) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.Server, "server", "", "node API URL (env "+EnvServer+", default "+DefaultServer+")")
	fs.StringVar(&f.Token, "token", "", "API token (env "+EnvToken+"; prefer --token-file)")
	fs.StringVar(&f.TokenFile, "token-file", "", "file holding the API token (env "+EnvTokenFile+")")
	fs.StringVar(&f.ConfigFile, "client-config", "", "client config file (env "+EnvConfig+", default ~/.config/firebreak/client.yaml)")
}

// Client resolves the flags with the environment and the config file
// (LoadConfig) and returns a client.
func (f *Flags) Client() (*Client, error) {
	cfg, err := LoadConfig(Config{Server: f.Server, Token: f.Token, TokenFile: f.TokenFile}, f.ConfigFile)
	if err != nil {
		return nil, err
	}
	return New(cfg)
}
