connect

