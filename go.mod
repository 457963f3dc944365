module github.com/eslapp/eslapp

go 1.26.8

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/percipia/eslgo v1.4.1 // indirect
)
