package main

import (
	"reflect"
	"testing"

	"github.com/otpgate/otpgate/config"
	"github.com/otpgate/otpgate/factors/guard"
)

// The configuration's defaults are the guard's: one place documents them
// (otpgate.example.yaml, docs/security.md), two hold them.
func TestGuardPolicyDefaults(t *testing.T) {
	if got, want := guardPolicy(config.Defaults(false)), guard.DefaultPolicy(); !reflect.DeepEqual(got, want) {
		t.Errorf("production defaults differ:\nconfig: %+v\nguard:  %+v", got, want)
	}
	dev := guardPolicy(config.Defaults(true))
	if dev.Limits != (guard.Limits{}) || dev.Breaker.MinConversion != 0 {
		t.Errorf("--dev: limits %+v, breaker %+v; want them off", dev.Limits, dev.Breaker)
	}
	if !reflect.DeepEqual(dev.NumberTypes, guard.DefaultNumberTypes) {
		t.Errorf("--dev number types %v, want the defaults", dev.NumberTypes)
	}
}

// Every number type the guard knows is accepted by the configuration.
func TestGuardNumberTypesAccepted(t *testing.T) {
	c := config.Defaults(true)
	c.Phone.NumberTypes = guard.NumberTypeNames()
	if err := c.Validate(true); err != nil {
		t.Errorf("config refuses a number type the guard knows: %v", err)
	}
	if err := guardPolicy(c).Validate(); err != nil {
		t.Errorf("guard refuses: %v", err)
	}
}
