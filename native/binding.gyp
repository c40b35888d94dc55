{
  "targets": [
    {
      "target_name": "factrl_gemm",
      "sources": ["gemm.c"],
      "cflags": ["-O2", "-std=c11", "-Wall", "-Wextra"],
      "include_dirs": ["/usr/include/x86_64-linux-gnu/openblas-pthread", "/usr/include/openblas"],
      "libraries": ["-lopenblas"]
    }
  ]
}
