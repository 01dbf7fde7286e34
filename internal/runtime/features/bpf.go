package features

import "skiffd/internal/sys"

func bpfSyscall() uintptr { return sys.SysBpf }
