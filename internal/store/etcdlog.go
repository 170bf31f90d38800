package store

import (
	"os"

	"go.etcd.io/etcd/client/pkg/v3/logutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// etcdLogger builds the embedded member's zap logger at level, writing JSON
// to stderr, without the errors etcd logs for its own listeners closing on
// a normal shutdown (they arrive on Member.Err when they matter).
func etcdLogger(level string) *zap.Logger {
	core := zapcore.NewCore(
		zapcore.NewJSONEncoder(logutil.DefaultZapLoggerConfig.EncoderConfig),
		zapcore.Lock(os.Stderr),
		logutil.ConvertToZapLevel(level),
	)
	return zap.New(quietCore{core})
}

// quietCore drops the shutdown noise of embedded etcd.
type quietCore struct{ zapcore.Core }

func (c quietCore) With(f []zapcore.Field) zapcore.Core { return quietCore{c.Core.With(f)} }

func (c quietCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.Message == "setting up serving from embedded etcd failed." {
		return ce
	}
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}
