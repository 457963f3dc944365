sendevent CUSTOM
Content-Length: 2
Content-Length: 3

xxyyy