module syncret.dev/e2e/providers/azkv

go 1.26.0
