sendmsg
call-command: execute
execute-app-name: playback
execute-app-name: say

