module engine.local/sdk

go 1.24
