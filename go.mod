module github.com/eslapp/eslapp

go 1.26.8

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/go-audio/audio v1.0.0 // indirect
	github.com/go-audio/riff v1.0.0 // indirect
	github.com/go-audio/wav v1.1.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/hashicorp/go-cleanhttp v0.5.2 // indirect
	github.com/hashicorp/go-retryablehttp v0.7.8 // indirect
	github.com/percipia/eslgo v1.4.1 // indirect
	github.com/prometheus/client_golang v1.23.2 // indirect
)
