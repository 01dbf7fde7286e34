module skiffd

go 1.26
