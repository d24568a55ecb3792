module engine.local/examples/languages/go

go 1.24

require engine.local/sdk v0.0.0

replace engine.local/sdk => ../../../sdk/go
