api status
Content-Length: -5

