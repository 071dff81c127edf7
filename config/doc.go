// Package config loads the storage unit's settings from config.d/*.json,
// *.yaml and *.yml, merged in file-name order exactly as the old Python
// turku-storage did, applies defaults and validates them into a plain
// Config. Viper lives here and only here; errors name the file and the key.
// Every key is declared once, in the settings table (settings.go): its
// field, default, reload class and documentation; the rest follows.
package config
