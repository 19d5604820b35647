// Package templates holds everything otpgate shows to people, embedded into the
// binary with embed: the hosted HTML pages and their CSS (pages/, static/), the
// SMS texts (sms/) and the message catalogs per language (locales/).
//
// It imports nothing from otpgate: provider renders the pages and factors
// renders the SMS texts.
package templates
