sendmsg
execute-app-arg: first
execute-app-arg:
call-command: execute
execute-app-name: hangup

