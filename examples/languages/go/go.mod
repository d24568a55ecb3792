module engine.local/examples/go-wordcount

go 1.24

require engine.local/sdk v0.0.0

replace engine.local/sdk => ../../../sdk/go
