package config

import (
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func cmpIgnore(fields ...string) cmp.Option {
	return cmpopts.IgnoreFields(Config{}, fields...)
}
