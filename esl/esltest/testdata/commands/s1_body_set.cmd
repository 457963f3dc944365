sendmsg
call-command: execute
execute-app-name: set
Content-Type: text/plain
Content-Length: 38

wfe_result={"name": "O'Brien", "n": 1}